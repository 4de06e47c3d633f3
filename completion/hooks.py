"""Signal receivers: re-analyse a record when its encounter or one of its documents
changes. (Filled in by the completion engine.)"""
