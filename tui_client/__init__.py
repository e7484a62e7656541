"""The Textual admin client for Pending License Management (``plm-tui``)."""
