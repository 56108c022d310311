"""crgate: a CI gate for Yandex Cloud Container Registry vulnerability scans."""

__version__ = "0.1.0"
