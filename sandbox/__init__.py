"""Loopback stand-ins for every upstream the app calls, serving the real response shapes.

`python -m sandbox` serves them; `python -m sandbox env` prints the settings that point the app here.
"""
