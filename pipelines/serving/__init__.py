"""A model server that speaks TensorFlow Serving's REST and gRPC APIs.

``pipelines.serving.options.ServeOptions`` declares its settings (importing it imports no
TensorFlow); ``pipelines.serving.server.serve(models_dir, **settings)`` runs it.
"""
