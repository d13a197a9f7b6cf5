"""The user-style scope benchmark: its deterministic builder (``build.py``) and relation families (``families.py``)."""
