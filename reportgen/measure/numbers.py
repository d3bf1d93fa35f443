"""How the audit writes a count and a shape, shared by the audit (params.py) and its layouts (audit_text.py):
here, so neither imports the other for them."""


def thousands(value: int) -> str:
    return f"{value:,}"


def shape_text(shape: tuple[int, ...] | list[int]) -> str:
    return "x".join(str(d) for d in shape)
