"""The real-time service: a SQLite store, a vector index and a FastAPI app over a service folder.

`write_service_folder` (bundle.py) makes the folder, `create_app` (app.py) serves it, `zsrec serve` runs it.
Importing this package is cheap; FastAPI and faiss load with the modules that need them.
"""
