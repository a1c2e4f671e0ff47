"""Wire format shared by the server, the handlers and the runtime: frames, errors, canonical JSON."""
