"""The grammar file (installed as the package cnndsl.grammar)."""
