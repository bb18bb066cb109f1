"""A helper module beside function_app.py: importable because the app folder is first on sys.path."""


def line_price(qty: int, unit_price: float) -> float:
    return round(qty * unit_price, 2)
