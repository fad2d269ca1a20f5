"""The terminal mask editor: numpy operations (ops/, no Textual), the zoomable viewer and
the `segtriage paint` app."""
