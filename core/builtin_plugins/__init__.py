"""The plugins that ship with Joist (Girder's names). Each is registered in
setup.py's ``joist.plugins`` entry points and loads exactly as a third-party
plugin would: only when enabled, at the next start, through ``PluginInfo``."""
