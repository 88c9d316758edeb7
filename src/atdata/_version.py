"""The package version (base layer, so any module can name it without importing ``atdata``)."""

__version__ = "0.1.0"
