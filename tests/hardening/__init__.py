"""The hardening suite: bad input, faults, load and attacks, each tried for real (issue 7).

What each test proves is listed in SECURITY.md at the repository root.
"""
