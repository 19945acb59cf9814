"""The built-in backends, one module each, imported only when used."""
