"""The service layer: the only code that changes data. Views and CLI both call it."""
