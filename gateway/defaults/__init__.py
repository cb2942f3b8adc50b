"""Built-in behaviour of each chain stage, registered as plugins like any other."""
