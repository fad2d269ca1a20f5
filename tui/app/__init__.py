"""The review app (`segtriage DIR`): app.py composes it from one mixin per concern; data.py
holds the rows it shows, widgets/ and screens/ what it draws, actions.py its keys."""
