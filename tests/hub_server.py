"""A small Hugging Face Hub-compatible server on 127.0.0.1, for tests through the real clients.

It speaks what huggingface_hub, transformers and datasets send (see
shared/docs/hub-protocol.md): repo create, YAML validation, preupload, LFS
batch / upload / verify, NDJSON commits (atomic, with ``create_pr``), repo
info, tree, paths-info, resolve (HEAD/GET, ranges), refs and whoami, with the
Hub's error codes. Storage is in memory. Faults (an HTTP status, a delay, a
dropped connection) can be injected on chosen routes, a chosen number of
times, so failure handling is tested against real client behaviour.

Standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".parquet", ".png", ".jpg", ".arrow", ".msgpack", ".h5")
TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def git_blob_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def lfs_pointer(oid: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


@dataclass
class StoredFile:
    size: int
    git_oid: str
    content: bytes | None = None  # regular files
    lfs_oid: str | None = None  # LFS files: sha256, bytes in HubState.lfs


@dataclass
class Commit:
    oid: str
    files: dict[str, StoredFile]
    parent: str | None
    title: str
    created: float = field(default_factory=time.time)


@dataclass
class Repo:
    type: str
    id: str
    private: bool = False
    gated: bool = False
    refs: dict[str, str] = field(default_factory=dict)  # branch or refs/pr/N -> commit oid
    commits: dict[str, Commit] = field(default_factory=dict)
    prs: int = 0


@dataclass
class Fault:
    """Answer requests matching ``method`` and ``path`` (a regex) with a fault, ``times`` times."""

    method: str
    path: str
    status: int | None = None
    delay: float = 0.0
    drop: bool = False
    times: int = 1
    hits: int = 0
    truncate: int | None = None  # send the headers of the whole body, then only this many bytes, then hang up


class HubState:
    """Everything the server holds: repos, LFS objects, tokens, faults and a request log."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, int]] = []
        self.ranges: list[tuple[str, str]] = []  # (path, Range header) of every ranged file request
        self.lock = threading.RLock()

    # ---------------------------------------------------------------- setup helpers for tests

    def add_user(self, name: str, token: str, orgs: tuple[str, ...] = (), write: bool = True) -> None:
        self.tokens[token] = {"name": name, "orgs": list(orgs), "write": write}

    def inject(self, method: str, path: str, *, status: int | None = None, delay: float = 0.0,
               drop: bool = False, times: int = 1, truncate: int | None = None) -> Fault:
        fault = Fault(method.upper(), path, status, delay, drop, times, truncate=truncate)
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def create_repo(self, repo_type: str, repo_id: str, private: bool = False, gated: bool = False) -> Repo:
        with self.lock:
            repo = Repo(repo_type, repo_id, private=private, gated=gated)
            init = Commit(self._new_oid(), {}, None, "initial commit")
            repo.commits[init.oid] = init
            repo.refs["main"] = init.oid
            self.repos[(repo_type, repo_id)] = repo
            return repo

    def snapshot(self, repo_type: str, repo_id: str) -> dict[str, Any]:
        """Refs and file oids of a repo, to assert that a failed operation changed nothing."""
        repo = self.repos[(repo_type, repo_id)]
        return {ref: {p: f.git_oid for p, f in repo.commits[oid].files.items()} | {"__oid__": oid}
                for ref, oid in repo.refs.items()}

    @staticmethod
    def _new_oid() -> str:
        return hashlib.sha1(uuid.uuid4().bytes).hexdigest()

    # ---------------------------------------------------------------- lookups

    def resolve_rev(self, repo: Repo, rev: str) -> str | None:
        if rev in repo.refs:
            return repo.refs[rev]
        if re.fullmatch(r"[0-9a-f]{7,40}", rev):
            matches = [oid for oid in repo.commits if oid.startswith(rev)]
            if len(matches) == 1:
                return matches[0]
        return None

    def file_bytes(self, f: StoredFile) -> bytes:
        return f.content if f.content is not None else self.lfs[f.lfs_oid]


class HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HubServer

    # ---------------------------------------------------------------- plumbing

    def log_message(self, fmt: str, *args: Any) -> None:  # keep test output quiet
        pass

    @property
    def state(self) -> HubState:
        return self.server.state

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/json", head: bool = False) -> None:
        head = head or self.command == "HEAD"  # a body after a HEAD response would corrupt the kept-alive connection
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = getattr(self, "_truncate", None)
        if not head and body and cut is not None:
            self._truncate = None
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
        elif not head and body:
            self.wfile.write(body)
        self.state.log.append((self.command, self.path, status))

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, status: int, message: str, code: str | None = None, head: bool = False,
               headers: dict[str, str] | None = None) -> None:
        h = dict(headers or {})
        if code:
            h["X-Error-Code"] = code
        h["X-Error-Message"] = message
        self._send(status, json.dumps({"error": message}).encode(), h, head=head)

    def _user(self) -> dict[str, Any] | None | bool:
        """The token's user; None without a token; False for an unknown token."""
        auth = self.headers.get("Authorization", "")
        if not auth.lower().startswith("bearer "):
            return None
        return self.state.tokens.get(auth.split(" ", 1)[1].strip(), False)

    def _fault(self) -> bool:
        """Apply an injected fault; True when the request was answered (or dropped) by it."""
        path = urlsplit(self.path).path
        for f in self.state.faults:
            if f.hits < f.times and f.method in (self.command, "*") and re.search(f.path, path):
                f.hits += 1
                if f.delay:
                    time.sleep(f.delay)
                if f.truncate is not None:
                    self._truncate = f.truncate  # the file route sends part of its body, then hangs up
                    return False
                if f.drop:
                    self._body()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return True
                if f.status:
                    self._body()
                    self._error(f.status, f"injected fault {f.status}")
                    return True
        return False

    def _dispatch(self) -> None:
        try:
            if self._fault():
                return
            route(self)
        except BrokenPipeError:
            pass
        except Exception as exc:  # noqa: BLE001 - a server bug must surface as a 500 in the test
            self._error(500, f"server error: {exc!r}")

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _dispatch

    # ---------------------------------------------------------------- access control

    def repo_for_read(self, rtype: str, repo_id: str, head: bool = False) -> Repo | None:
        repo = self.state.repos.get((rtype, repo_id))
        user = self._user()
        if user is False:
            self._error(401, "Invalid credentials in Authorization header", head=head)
            return None
        if repo is None or (repo.private and not self._can_write(user, repo_id)):
            self._error(404 if user else 401, "Repository not found", "RepoNotFound", head=head)
            return None
        if repo.gated and not user:
            self._error(401, "Access to this repo is restricted: you must be authenticated", "GatedRepo",
                        head=head)
            return None
        return repo

    def _can_write(self, user: Any, repo_id: str) -> bool:
        ns = repo_id.split("/")[0]
        return bool(user) and user["write"] and ns in [user["name"], *user["orgs"]]

    def repo_for_write(self, rtype: str, repo_id: str) -> Repo | None:
        user = self._user()
        if user is None:
            self._error(401, "You must be authenticated to write to a repo")
            return None
        if user is False:
            self._error(401, "Invalid credentials in Authorization header")
            return None
        repo = self.state.repos.get((rtype, repo_id))
        if repo is None:
            self._error(404, "Repository not found", "RepoNotFound")
            return None
        if not self._can_write(user, repo_id):
            self._error(403, f"You don't have the rights to write to {repo_id}")
            return None
        return repo


# -------------------------------------------------------------------- routes

API_REPO = re.compile(r"^/api/(models|datasets|spaces)/([^/]+)/([^/]+)(?:/(.*))?$")
LFS_BATCH = re.compile(r"^/(?:(datasets|spaces)/)?([^/]+)/([^/]+?)\.git/info/lfs/objects/batch$")
RESOLVE = re.compile(r"^/(?:(datasets|spaces)/)?([^/]+)/([^/]+)/resolve/([^/]+)/(.+)$")


def route(h: HubHandler) -> None:
    split = urlsplit(h.path)
    path, query = split.path, parse_qs(split.query)
    m = (h.command, path)
    if m == ("GET", "/api/whoami-v2"):
        return whoami(h)
    if m == ("POST", "/api/repos/create"):
        return create_repo(h)
    if m == ("POST", "/api/validate-yaml"):
        h._body()
        return h._json(200, {"errors": [], "warnings": []})
    if h.command == "PUT" and path.startswith("/lfs/upload/"):
        return lfs_upload(h, path.rsplit("/", 1)[1])
    if h.command == "POST" and path.startswith("/lfs/verify/"):
        return lfs_verify(h, path.rsplit("/", 1)[1])
    if (mm := LFS_BATCH.match(path)) and h.command == "POST":
        return lfs_batch(h, TYPES.get(mm.group(1) or "models", "model"), f"{mm.group(2)}/{mm.group(3)}")
    if mm := API_REPO.match(path):
        rtype, repo_id, rest = TYPES[mm.group(1)], f"{unquote(mm.group(2))}/{unquote(mm.group(3))}", mm.group(4)
        return api_repo(h, rtype, repo_id, rest or "", query)
    if (mm := RESOLVE.match(path)) and h.command in ("GET", "HEAD"):
        rtype = TYPES.get(mm.group(1) or "models", "model")
        return resolve(h, rtype, f"{mm.group(2)}/{mm.group(3)}", unquote(mm.group(4)), unquote(mm.group(5)))
    h._error(404, f"no route for {h.command} {path}")


def whoami(h: HubHandler) -> None:
    user = h._user()
    if not user:
        return h._error(401, "Invalid credentials in Authorization header")
    h._json(200, {"type": "user", "id": user["name"], "name": user["name"], "fullname": user["name"],
                  "avatarUrl": "", "orgs": [{"name": o} for o in user["orgs"]],
                  "auth": {"accessToken": {"displayName": "test", "role": "write" if user["write"] else "read"}}})


def create_repo(h: HubHandler) -> None:
    body = json.loads(h._body() or b"{}")
    user = h._user()
    if not user:
        return h._error(401, "Invalid credentials in Authorization header" if user is False else
                        "You must be authenticated")
    ns = body.get("organization") or user["name"]
    repo_id = f"{ns}/{body['name']}"
    rtype = body.get("type") or "model"
    if not h._can_write(user, repo_id):
        return h._error(403, f"You don't have the rights to create a repo in {ns}")
    url = f"{h.server.endpoint}/{PREFIX[rtype]}{repo_id}"
    with h.state.lock:
        if (rtype, repo_id) in h.state.repos:
            return h._send(409, json.dumps({"error": "You already created this repo", "url": url}).encode())
        h.state.create_repo(rtype, repo_id, private=bool(body.get("private") or body.get("visibility") == "private"))
    h._json(200, {"url": url, "name": repo_id, "id": repo_id})


def api_repo(h: HubHandler, rtype: str, repo_id: str, rest: str, query: dict[str, list[str]]) -> None:
    parts = rest.split("/") if rest else []
    if h.command == "GET" and (not parts or parts[0] == "revision"):
        repo = h.repo_for_read(rtype, repo_id)
        if repo is None:
            return
        rev = unquote(parts[1]) if len(parts) > 1 else "main"
        return repo_info(h, repo, rev)
    if h.command == "GET" and parts and parts[0] == "tree":
        repo = h.repo_for_read(rtype, repo_id)
        if repo is None:
            return
        return tree(h, repo, unquote(parts[1]) if len(parts) > 1 else "main",
                    "/".join(unquote(p) for p in parts[2:]), query)
    if h.command == "GET" and parts and parts[0] == "refs":
        repo = h.repo_for_read(rtype, repo_id)
        if repo is None:
            return
        branches = [{"name": r, "ref": f"refs/heads/{r}", "targetCommit": o} for r, o in repo.refs.items()
                    if not r.startswith("refs/")]
        prs = [{"name": r, "ref": r, "targetCommit": o} for r, o in repo.refs.items() if r.startswith("refs/pr/")]
        return h._json(200, {"branches": branches, "tags": [], "converts": [], "pullRequests": prs})
    if h.command == "POST" and parts and parts[0] == "paths-info":
        repo = h.repo_for_read(rtype, repo_id)
        if repo is None:
            return
        return paths_info(h, repo, unquote(parts[1]) if len(parts) > 1 else "main")
    if h.command == "POST" and parts and parts[0] == "preupload":
        repo = h.repo_for_write(rtype, repo_id)
        if repo is None:
            h._body()
            return
        return preupload(h, repo, unquote(parts[1]) if len(parts) > 1 else "main")
    if h.command == "POST" and parts and parts[0] == "commit":
        repo = h.repo_for_write(rtype, repo_id)
        if repo is None:
            h._body()
            return
        return commit(h, repo, unquote(parts[1]) if len(parts) > 1 else "main", query)
    h._error(404, f"no route for {h.command} {h.path}")


def _commit_or_404(h: HubHandler, repo: Repo, rev: str, head: bool = False) -> Commit | None:
    oid = h.state.resolve_rev(repo, rev)
    if oid is None:
        h._error(404, f"Invalid rev id: {rev}", "RevisionNotFound", head=head)
        return None
    return repo.commits[oid]


def repo_info(h: HubHandler, repo: Repo, rev: str) -> None:
    c = _commit_or_404(h, repo, rev)
    if c is None:
        return
    card = {}
    if "README.md" in c.files:
        text = h.state.file_bytes(c.files["README.md"]).decode(errors="replace")
        if text.startswith("---"):
            try:
                import yaml

                card = yaml.safe_load(text.split("---", 2)[1]) or {}
            except Exception:  # noqa: BLE001 - card data is optional
                card = {}
    when = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(c.created))
    info = {"_id": repo.id, "id": repo.id, "modelId": repo.id, "author": repo.id.split("/")[0], "sha": c.oid,
            "lastModified": when, "createdAt": when, "private": repo.private, "gated": "auto" if repo.gated else False,
            "disabled": False, "downloads": 0, "likes": 0, "tags": [], "cardData": card,
            "siblings": [{"rfilename": p} for p in sorted(c.files)], "usedStorage": 0}
    h._json(200, info)


def _entry(path: str, f: StoredFile) -> dict[str, Any]:
    e: dict[str, Any] = {"type": "file", "oid": f.git_oid, "size": f.size, "path": path}
    if f.lfs_oid:
        e["lfs"] = {"oid": f.lfs_oid, "size": f.size, "pointerSize": len(lfs_pointer(f.lfs_oid, f.size))}
    return e


def tree(h: HubHandler, repo: Repo, rev: str, sub: str, query: dict[str, list[str]]) -> None:
    c = _commit_or_404(h, repo, rev)
    if c is None:
        return
    recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
    prefix = sub.strip("/") + "/" if sub.strip("/") else ""
    entries: dict[str, dict[str, Any]] = {}
    for p, f in sorted(c.files.items()):
        if not p.startswith(prefix):
            continue
        rel = p[len(prefix):]
        if "/" in rel and not recursive:
            d = prefix + rel.split("/")[0]
            entries.setdefault(d, {"type": "directory", "oid": git_blob_oid(d.encode()), "size": 0, "path": d})
            continue
        if recursive:
            segs = rel.split("/")[:-1]
            for i in range(1, len(segs) + 1):
                d = prefix + "/".join(segs[:i])
                entries.setdefault(d, {"type": "directory", "oid": git_blob_oid(d.encode()), "size": 0, "path": d})
        entries[p] = _entry(p, f)
    if prefix and not entries:
        return h._error(404, f"{sub} does not exist", "EntryNotFound", headers={"X-Repo-Commit": c.oid})
    h._json(200, list(entries.values()))


def paths_info(h: HubHandler, repo: Repo, rev: str) -> None:
    body = h._body()
    ctype = h.headers.get("Content-Type", "")
    if "json" in ctype:
        paths = json.loads(body or b"{}").get("paths", [])
    else:
        paths = parse_qs(body.decode()).get("paths", [])
    c = _commit_or_404(h, repo, rev)
    if c is None:
        return
    out = []
    for p in paths:
        p = p.strip("/")
        if p in c.files:
            out.append(_entry(p, c.files[p]))
        elif any(f.startswith(p + "/") for f in c.files):
            out.append({"type": "directory", "oid": git_blob_oid(p.encode()), "size": 0, "path": p})
    h._json(200, out)


def _is_lfs(path: str, size: int, sample: bytes) -> bool:
    if path.endswith(LFS_SUFFIXES) or size > 1_000_000:
        return True
    try:
        sample.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


def preupload(h: HubHandler, repo: Repo, rev: str) -> None:
    body = json.loads(h._body() or b"{}")
    c = _commit_or_404(h, repo, rev)
    if c is None:
        return
    files = []
    for f in body.get("files", []):
        sample = base64.b64decode(f.get("sample", ""))
        lfs = _is_lfs(f["path"], int(f["size"]), sample)
        existing = c.files.get(f["path"])
        oid = None
        if existing is not None:
            oid = existing.lfs_oid if lfs and existing.lfs_oid else (None if lfs else existing.git_oid)
        files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                      "oid": oid})
    h._json(200, {"files": files, "commitOid": c.oid})


def lfs_batch(h: HubHandler, rtype: str, repo_id: str) -> None:
    body = json.loads(h._body() or b"{}")
    repo = h.repo_for_write(rtype, repo_id)
    if repo is None:
        return
    objs = []
    for o in body.get("objects", []):
        oid, size = o["oid"], int(o["size"])
        if oid in h.state.lfs:
            objs.append({"oid": oid, "size": size})
            continue
        base = h.server.endpoint
        objs.append({"oid": oid, "size": size, "authenticated": True,
                     "actions": {"upload": {"href": f"{base}/lfs/upload/{oid}", "header": {}},
                                 "verify": {"href": f"{base}/lfs/verify/{oid}", "header": {}}}})
    h._send(200, json.dumps({"transfer": "basic", "objects": objs, "hash_algo": "sha256"}).encode(),
            content_type="application/vnd.git-lfs+json")


def lfs_upload(h: HubHandler, oid: str) -> None:
    data = h._body()
    if hashlib.sha256(data).hexdigest() != oid:
        return h._error(400, "sha256 mismatch")
    with h.state.lock:
        h.state.lfs[oid] = data
    h._send(200, b"")


def lfs_verify(h: HubHandler, oid: str) -> None:
    body = json.loads(h._body() or b"{}")
    if oid not in h.state.lfs or len(h.state.lfs[oid]) != int(body.get("size", -1)):
        return h._error(404, f"LFS object {oid} was not uploaded")
    h._json(200, {"success": True})


def commit(h: HubHandler, repo: Repo, rev: str, query: dict[str, list[str]]) -> None:
    lines = [json.loads(line) for line in h._body().decode().splitlines() if line.strip()]
    create_pr = query.get("create_pr", ["0"])[0] in ("1", "true", "True")
    with h.state.lock:
        base_oid = h.state.resolve_rev(repo, rev)
        if base_oid is None:
            return h._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        header = next((x["value"] for x in lines if x["key"] == "header"), {})
        parent = header.get("parentCommit")
        if parent and parent != base_oid:
            return h._error(412, "A commit has happened since. Please refresh and try again.")
        files = dict(repo.commits[base_oid].files)
        for item in lines:
            key, val = item["key"], item.get("value", {})
            if key == "file":
                data = base64.b64decode(val["content"]) if val.get("encoding") == "base64" else \
                    val["content"].encode()
                files[val["path"]] = StoredFile(len(data), git_blob_oid(data), content=data)
            elif key == "lfsFile":
                if val["oid"] not in h.state.lfs:
                    return h._error(422, f"LFS object {val['oid']} for {val['path']} was never uploaded")
                files[val["path"]] = StoredFile(int(val["size"]), git_blob_oid(lfs_pointer(val["oid"], val["size"])),
                                                lfs_oid=val["oid"])
            elif key == "deletedFile":
                if val["path"] not in files:
                    return h._error(404, "A file with this name doesn't exist", "EntryNotFound")
                del files[val["path"]]
            elif key == "deletedFolder":
                files = {p: f for p, f in files.items() if not p.startswith(val["path"].rstrip("/") + "/")}
        new = Commit(h.state._new_oid(), files, base_oid, header.get("summary", ""))
        repo.commits[new.oid] = new
        base = f"{h.server.endpoint}/{PREFIX[repo.type]}{repo.id}"
        pr_url = None
        if create_pr:
            repo.prs += 1
            repo.refs[f"refs/pr/{repo.prs}"] = new.oid
            pr_url = f"{base}/discussions/{repo.prs}"
        else:
            repo.refs[rev if rev in repo.refs else "main"] = new.oid
    h._json(200, {"commitUrl": f"{base}/commit/{new.oid}", "commitOid": new.oid, "pullRequestUrl": pr_url,
                  "success": True})


def resolve(h: HubHandler, rtype: str, repo_id: str, rev: str, path: str) -> None:
    head = h.command == "HEAD"
    repo = h.repo_for_read(rtype, repo_id, head=head)
    if repo is None:
        return
    c = _commit_or_404(h, repo, rev, head=head)
    if c is None:
        return
    f = c.files.get(path)
    if f is None:
        return h._error(404, "Entry not found", "EntryNotFound", head=head, headers={"X-Repo-Commit": c.oid})
    data = h.state.file_bytes(f)
    headers = {"X-Repo-Commit": c.oid, "ETag": f'"{f.lfs_oid or f.git_oid}"', "Accept-Ranges": "bytes"}
    if f.lfs_oid:
        headers["X-Linked-Etag"] = f'"{f.lfs_oid}"'
        headers["X-Linked-Size"] = str(f.size)
    status = 200
    rng = h.headers.get("Range")
    if rng:
        h.state.ranges.append((path, rng))
    if rng and (mm := re.match(r"bytes=(\d+)-(\d*)", rng)):
        start = int(mm.group(1))
        end = int(mm.group(2)) if mm.group(2) else len(data) - 1
        if start >= len(data) and len(data):
            return h._error(416, "Range not satisfiable", head=head)
        headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        data = data[start:end + 1]
        status = 206
    headers["Content-Length"] = str(len(data))
    h._send(status, data, headers, content_type="application/octet-stream", head=head)


class HubServer(ThreadingHTTPServer):
    """``with HubServer() as hub: ... hub.endpoint ...`` — serves until the block ends."""

    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), HubHandler)
        self.state = HubState()
        self.endpoint = f"http://{host}:{self.server_address[1]}"
        self._thread: threading.Thread | None = None

    def start(self) -> HubServer:
        self._thread = threading.Thread(target=self.serve_forever, name="hub-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A dropped connection (an injected fault) is expected here: no traceback on stderr."""

    def url(self, repo_type: str, repo_id: str) -> str:
        return f"{self.endpoint}/{PREFIX[repo_type]}{quote(repo_id)}"
