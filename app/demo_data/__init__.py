"""Small datasets shipped with TuneDeck for demos and smoke tests."""
