"""Stand-ins the Textual tests share where the real thing needs a terminal they do not have."""
from __future__ import annotations


def picture_widget():
    """Stands in for textual-image's widget class (kitty and sixel need a graphics terminal):
    records the pictures it is given."""
    from textual.widget import Widget

    class Picture(Widget):
        shown: list = []

        @property
        def image(self):
            return self.shown[-1] if self.shown else None

        @image.setter
        def image(self, value):
            self.shown.append(value)

    return Picture
