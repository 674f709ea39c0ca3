"""m2maudit: find dangerous machine and AI-agent credentials in access logs and inventories.

The package is a library first; `m2maudit.cli` is a thin shell over it.
"""

__version__ = "0.1.0"
