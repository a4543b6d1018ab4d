"""The bundled specs (installed as the package cnndsl.zoo)."""
