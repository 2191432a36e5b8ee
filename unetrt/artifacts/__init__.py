"""The artifact contract between the exporter (which writes it) and the runtime, bench, serving and
C++ apps (which read it): file names, the typed manifest, shape profiles, the TensorRT import helper
and dtype maps. Nothing here imports torch, the exporter or the runtime.
"""
