"""segtriage."""
