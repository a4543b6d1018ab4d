"""cnndsl's version, in a module of its own: codegen and the CLI read it without importing the
package's __init__ (and through it the API); pyproject.toml reads it for the build."""
__version__ = "0.1.0"
