"""The Dash dashboard: ``create_app`` builds it, ``DashServer`` serves it from a thread."""
