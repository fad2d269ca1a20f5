"""The terminal mask editor: numpy operations (ops.py, no Textual), the zoomable viewer and
the `segtriage paint` app."""
