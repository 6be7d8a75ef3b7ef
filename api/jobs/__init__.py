"""The API's persistent job queue: typed job records, their queue in state.db, and the threads that run them."""
