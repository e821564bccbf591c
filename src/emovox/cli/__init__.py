"""The ``emovox`` command line: thin wrappers over the library."""
