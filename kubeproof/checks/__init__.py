"""Checks: pure functions over plain dicts and the baseline. No I/O, no pytest.

Each returns a list of findings (empty when the object complies) or raises NotVerified when what it
was given cannot be judged."""
