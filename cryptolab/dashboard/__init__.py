"""The Dash dashboard: ``create_app`` builds it, ``DashServer`` serves it from a thread, ``show``
puts it in a notebook output cell."""

from cryptolab.dashboard.notebook import show

__all__ = ["show"]
