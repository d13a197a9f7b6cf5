"""Adapters to agent frameworks: :mod:`.langchain` (tools) and :mod:`.langgraph` (a model node).

Each imports its framework only when used.
"""
