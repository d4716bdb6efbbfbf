"""mailyard: a complete mail server for virtual-domain hosting."""

__version__ = "0.1.0"
__all__ = ["__version__"]
