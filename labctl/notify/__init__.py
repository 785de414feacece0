"""The lab's notifications view: Alertmanager's webhook receiver, with a page and an API to watch it."""
