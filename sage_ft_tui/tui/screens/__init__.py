"""Screens: Home, the runs list, the live monitor, a confirm modal, the wizard steps (wizard/) and the after-training screens (deploy/)."""
