"""Research code behind the README's reproductions; used by ``scripts/`` and the tests, not shipped in the wheel."""
