"""Python bindings of cbinfer (ctypes over libcbinfer.so, numpy arrays).

    import cbinfer
    net = cbinfer.Network("build/models/vgg7-noise1.onnx")
    s = net.stream(384, 288, backend="cpu", mode="cbinfer")
    s.load_thresholds("bench/thresholds/vgg7-noise1_vtest-96x72.thr")
    y = s.push(frame)          # frame: H x W x 3 uint8; y: float32 (C, H, W)
    s.stats()                  # dict: the last frame, and "layers"
    s.reset()

The build copies this package to build/python/cbinfer/ and records where the
library is (build/python/cbinfer/_build.py), so PYTHONPATH=build/python is
all it takes; CBINFER_LIBRARY names another libcbinfer.so. Errors raise
cbinfer.Error with the status and the library's message. A Network may be
shared by the streams of many threads; one Stream is used by one thread at a
time, as in C. `policy` (or Stream.set_policy) takes a policy spec of
cbinfer_stream_set_policy: "evnet:pixel", "skipconv:output,block=4",
"sigmadelta", ...

decode_nanodet() and decode_posenet() turn a detector's or a pose net's
outputs (as push returns them) into boxes and poses with the library's
decoders.
"""
import ctypes
import os
import threading

import numpy as np

__all__ = ["Batch", "Error", "Network", "Stream", "decode_nanodet", "decode_posenet",
           "keypoint_names", "coco_class_names", "version"]

_BACKENDS = {"cpu": 0, "cuda": 1}
_MODES = {"dense": 0, "cbinfer": 1, "cbinfer-ff": 2, "evnet": 3, "skipconv": 4,
          "sigmadelta": 5}
_PRECISIONS = {"fp32": 0, "tf32": 1, "fp16": 2}
_PARAM_THREADS = 3
_STATUS_BUFFER_TOO_SMALL = 105
_PARAM_COLLECT_STATS = 0


class Error(Exception):
    """A failed cbinfer call: .status (int), .status_name and .message."""

    def __init__(self, status, message):
        self.status = int(status)
        self.status_name = _lib().cbinfer_status_string(self.status).decode()
        self.message = message
        super().__init__(f"{self.status_name}: {message}" if message else self.status_name)


class _FrameStats(ctypes.Structure):
    _fields_ = [("frame_index", ctypes.c_int64), ("total_ms", ctypes.c_double),
                ("macs", ctypes.c_int64), ("dense_macs", ctypes.c_int64),
                ("changed_share", ctypes.c_double), ("host_syncs", ctypes.c_int64),
                ("macs_effective", ctypes.c_int64), ("overhead_arith", ctypes.c_int64),
                ("overhead_ldst", ctypes.c_int64)]


class _LayerStats(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("op", ctypes.c_char_p),
                ("changed_px", ctypes.c_int64), ("total_px", ctypes.c_int64),
                ("changed_in_px", ctypes.c_int64), ("macs", ctypes.c_int64),
                ("dense_macs", ctypes.c_int64), ("ran_dense", ctypes.c_int),
                ("step_ms", ctypes.c_double * 16), ("total_ms", ctypes.c_double),
                ("macs_effective", ctypes.c_int64), ("transmitted_el", ctypes.c_int64),
                ("overhead_arith", ctypes.c_int64), ("overhead_ldst", ctypes.c_int64),
                ("state_bytes", ctypes.c_int64)]


class _TensorView(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("channels", ctypes.c_int), ("height", ctypes.c_int),
                ("width", ctypes.c_int)]


class _Detection(ctypes.Structure):
    _fields_ = [("x0", ctypes.c_float), ("y0", ctypes.c_float), ("x1", ctypes.c_float),
                ("y1", ctypes.c_float), ("score", ctypes.c_float), ("class_id", ctypes.c_int)]


_KEYPOINTS = 17
_COCO_CLASSES = 80


class _Pose(ctypes.Structure):
    _fields_ = [("score", ctypes.c_float), ("keypoints", ctypes.c_float * (3 * _KEYPOINTS))]


_LIB = None


def _library_path():
    env = os.environ.get("CBINFER_LIBRARY")
    if env:
        return env
    try:
        from . import _build  # written by the build
        return _build.LIBRARY
    except ImportError:
        return "libcbinfer.so.0"


def _lib():
    global _LIB
    if _LIB is not None:
        return _LIB
    lib = ctypes.CDLL(_library_path())
    p, i, st, f, sz = ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_float, ctypes.c_size_t
    pp, ip, cp = ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_int), ctypes.c_char_p
    sigs = {
        "cbinfer_status_string": (cp, [st]),
        "cbinfer_version": (ctypes.c_uint, []),
        "cbinfer_network_load": (st, [cp, pp, cp, sz]),
        "cbinfer_network_free": (None, [p]),
        "cbinfer_network_input_dims": (st, [p, ip, ip, ip]),
        "cbinfer_network_conv_count": (i, [p]),
        "cbinfer_network_conv_name": (cp, [p, i]),
        "cbinfer_network_output_count": (i, [p]),
        "cbinfer_network_output_name": (cp, [p, i]),
        "cbinfer_stream_create": (st, [p, i, i, i, i, i, pp, cp, sz]),
        "cbinfer_stream_destroy": (None, [p]),
        "cbinfer_stream_last_error": (cp, [p]),
        "cbinfer_stream_reset": (st, [p]),
        "cbinfer_stream_set_param": (st, [p, i, ctypes.c_double]),
        "cbinfer_stream_set_threshold": (st, [p, cp, f]),
        "cbinfer_stream_set_threshold_all": (st, [p, f]),
        "cbinfer_stream_get_threshold": (st, [p, cp, ctypes.POINTER(f)]),
        "cbinfer_stream_load_thresholds": (st, [p, cp]),
        "cbinfer_stream_load_break_even": (st, [p, cp]),
        "cbinfer_stream_push_rgb8": (st, [p, p, i, i, sz]),
        "cbinfer_stream_output_dims_at": (st, [p, i, ip, ip, ip]),
        "cbinfer_stream_read_output_at": (st, [p, i, p, sz]),
        "cbinfer_stream_frame_stats": (st, [p, ctypes.POINTER(_FrameStats)]),
        "cbinfer_stream_layer_count": (i, [p]),
        "cbinfer_stream_layer_stats": (st, [p, i, ctypes.POINTER(_LayerStats)]),
        "cbinfer_stream_set_policy": (st, [p, cp, cp]),
        "cbinfer_stream_get_policy": (st, [p, cp, cp, sz]),
        "cbinfer_stream_state_bytes": (st, [p, ctypes.POINTER(ctypes.c_uint64)]),
        "cbinfer_decode_nanodet": (st, [ctypes.POINTER(_TensorView), i, i, i, i, f, f,
                                        ctypes.POINTER(_Detection), i, ip, cp, sz]),
        "cbinfer_decode_posenet": (st, [ctypes.POINTER(_TensorView)] * 4 +
                                   [i, i, f, f, ctypes.POINTER(_Pose), i, ip, cp, sz]),
        "cbinfer_pose_keypoint_name": (cp, [i]),
        "cbinfer_coco_class_name": (cp, [i]),
        "cbinfer_batch_create": (st, [p, i, i, i, i, i, i, pp, cp, sz]),
        "cbinfer_batch_destroy": (None, [p]),
        "cbinfer_batch_stream": (p, [p, i]),
        "cbinfer_batch_last_error": (cp, [p]),
        "cbinfer_batch_set_param": (st, [p, i, ctypes.c_double]),
        "cbinfer_batch_push_rgb8": (st, [p, ctypes.POINTER(ctypes.c_void_p), i, i, sz]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    _LIB = lib
    return lib


def version():
    """The library's version as (major, minor, patch)."""
    v = _lib().cbinfer_version()
    return (v // 10000, v // 100 % 100, v % 100)


def _views(arrays, what):
    """(C, H, W) float32 arrays as tensor views, and the arrays that back them."""
    kept, views = [], []
    for k, a in enumerate(arrays):
        a = np.ascontiguousarray(a, dtype=np.float32)
        if a.ndim == 4 and a.shape[0] == 1:
            a = a[0]
        if a.ndim != 3:
            raise ValueError(f"{what} {k} must be a (C, H, W) array, not {a.shape}")
        kept.append(a)
        views.append(_TensorView(a.ctypes.data, *a.shape))
    return kept, views


def _decode_error(status, err):
    raise Error(status, err.value.decode(errors="replace"))


def decode_nanodet(heads, input_size, classes=80, score_threshold=0.35, iou_threshold=0.5,
                   capacity=1000):
    """NanoDet's boxes (cbinfer_decode_nanodet) from its heads, a list of
    (C, H, W) arrays, for an input of input_size = (width, height) pixels.
    Returns a float32 array of shape (N, 6): x0, y0, x1, y1, score, class,
    in input pixels, best first; all the boxes kept, however many (capacity
    is only the first guess at the room they need)."""
    kept, views = _views(heads, "head")
    arr = (_TensorView * len(views))(*views)
    n, err = ctypes.c_int(0), ctypes.create_string_buffer(512)
    for _ in range(2):  # once more with room for all, if capacity was too small
        out = (_Detection * max(capacity, 1))()
        st = _lib().cbinfer_decode_nanodet(arr, len(views), int(input_size[0]),
                                           int(input_size[1]), classes, score_threshold,
                                           iou_threshold, out, capacity, ctypes.byref(n), err,
                                           len(err))
        if st != _STATUS_BUFFER_TOO_SMALL:
            break
        capacity = n.value
    if st:
        _decode_error(st, err)
    del kept
    return np.array([[d.x0, d.y0, d.x1, d.y1, d.score, d.class_id] for d in out[:n.value]],
                    dtype=np.float32).reshape(-1, 6)


def coco_class_names():
    """The 80 COCO class names of decode_nanodet's class ids, in order ("person", ...)."""
    return [_lib().cbinfer_coco_class_name(k).decode() for k in range(_COCO_CLASSES)]


def keypoint_names():
    """The 17 keypoint names of decode_posenet, in order ("nose", "left_eye", ...)."""
    return [_lib().cbinfer_pose_keypoint_name(k).decode() for k in range(_KEYPOINTS)]


def decode_posenet(heatmap, offsets, displacement_fwd, displacement_bwd, input_size,
                   score_threshold=0.5, nms_radius=20.0, max_poses=20):
    """PoseNet's poses (cbinfer_decode_posenet) for an input of input_size =
    (width, height) pixels. Returns a list of (score, keypoints) with
    keypoints a float32 (17, 3) array of x, y, score in input pixels, in
    keypoint_names() order."""
    kept, views = _views([heatmap, offsets, displacement_fwd, displacement_bwd], "tensor")
    out = (_Pose * max(max_poses, 1))()
    n, err = ctypes.c_int(0), ctypes.create_string_buffer(512)
    refs = [ctypes.byref(v) for v in views]
    st = _lib().cbinfer_decode_posenet(*refs, int(input_size[0]), int(input_size[1]),
                                       score_threshold, nms_radius, out, max_poses,
                                       ctypes.byref(n), err, len(err))
    if st:
        _decode_error(st, err)
    del kept
    return [(p.score, np.array(p.keypoints, dtype=np.float32).reshape(_KEYPOINTS, 3))
            for p in out[:n.value]]


def _created(create, *args):
    """The handle a cbinfer_*_create / _load call makes: it is called with
    args, then the out pointer and an error buffer; a failure raises."""
    err = ctypes.create_string_buffer(1024)
    handle = ctypes.c_void_p()
    st = create(*args, ctypes.byref(handle), err, len(err))
    if st:
        raise Error(st, err.value.decode(errors="replace"))
    return handle


def _settings(backend, mode, precision):
    """The C values of a stream's backend, mode and precision names."""
    return (_key(_BACKENDS, backend, "backend"), _key(_MODES, mode, "mode"),
            _key(_PRECISIONS, precision, "precision"))


def _key(table, value, what):
    if value not in table:
        raise ValueError(f"{what} must be one of {', '.join(table)}, not {value!r}")
    return table[value]


class Network:
    """An ONNX model loaded once (cbinfer_network_load); immutable, shareable."""

    def __init__(self, path):
        self._h = _created(_lib().cbinfer_network_load, os.fsencode(path))
        self._lock = threading.Lock()  # streams open and close on any thread
        self._open_streams = 0
        self._free_pending = False

    def close(self):
        """Frees the network, or, while streams of it are open, once the last
        of them is closed (C requires the streams to go first; the garbage
        collector may finalize a network before its streams when they share
        a reference cycle)."""
        lock = getattr(self, "_lock", None)
        if lock is None:  # __init__ failed
            return
        with lock:
            if not self._h:
                return
            if self._open_streams > 0:
                self._free_pending = True
                return
            _lib().cbinfer_network_free(self._h)
            self._h = None

    def _stream_opened(self):
        with self._lock:
            self._open_streams += 1

    def _stream_closed(self):
        with self._lock:
            self._open_streams -= 1
            last = self._free_pending and self._open_streams == 0
            if last:
                self._free_pending = False
        if last:
            self.close()

    def __del__(self):
        self.close()

    @property
    def input_dims(self):
        """(channels, height, width); -1 where the model leaves a side free."""
        c, h, w = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        _lib().cbinfer_network_input_dims(self._h, ctypes.byref(c), ctypes.byref(h),
                                          ctypes.byref(w))
        return c.value, h.value, w.value

    @property
    def conv_names(self):
        """The change-detecting layers, in execution order."""
        lib = _lib()
        return [lib.cbinfer_network_conv_name(self._h, k).decode()
                for k in range(lib.cbinfer_network_conv_count(self._h))]

    @property
    def output_names(self):
        """The graph outputs, in the model's order (a detector's heads, say)."""
        lib = _lib()
        return [lib.cbinfer_network_output_name(self._h, k).decode()
                for k in range(lib.cbinfer_network_output_count(self._h))]

    def stream(self, width, height, backend="cpu", mode="cbinfer", precision="fp32",
               policy=None, threads=0):
        """A stream (one camera) for frames of width x height."""
        return Stream(self, width, height, backend, mode, precision, policy, threads)

    def batch(self, n, width, height, backend="cpu", mode="cbinfer", precision="fp32",
              threads=0):
        """n cameras of width x height stepped together (Batch)."""
        return Batch(self, n, width, height, backend, mode, precision, threads)


class _Closing:
    """close() at garbage collection and at the end of a with block."""

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _output_shapes(stream_handle, n_outputs):
    """(C, H, W) of each output of a stream."""
    shapes = []
    for k in range(n_outputs):
        c, h, w = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        st = _lib().cbinfer_stream_output_dims_at(stream_handle, k, ctypes.byref(c),
                                                   ctypes.byref(h), ctypes.byref(w))
        if st:
            raise Error(st, f"output {k}")
        shapes.append((c.value, h.value, w.value))
    return shapes


class Stream(_Closing):
    """One camera's state (cbinfer_stream_create). Keeps its Network alive."""

    def __init__(self, net, width, height, backend="cpu", mode="cbinfer", precision="fp32",
                 policy=None, threads=0):
        self._net = net
        self._h = _created(_lib().cbinfer_stream_create, net._h, int(width), int(height),
                           *_settings(backend, mode, precision))
        net._stream_opened()
        self.width, self.height = int(width), int(height)
        if threads:
            self._check(_lib().cbinfer_stream_set_param(self._h, _PARAM_THREADS, threads))
        if policy is not None:
            self.set_policy(policy)
        self.output_shapes = _output_shapes(self._h, len(net.output_names))  # (C, H, W) each
        self.output_shape = self.output_shapes[0]

    @classmethod
    def _member(cls, batch, handle):
        """Stream j of a batch: the batch owns it (close() leaves it be)."""
        s = cls.__new__(cls)
        s._net, s._h, s._batch = batch._net, ctypes.c_void_p(handle), batch
        s.width, s.height = batch.width, batch.height
        s.output_shapes = batch.output_shapes
        s.output_shape = batch.output_shapes[0]
        return s

    def _check(self, st):
        if st:
            raise Error(st, _lib().cbinfer_stream_last_error(self._h).decode(errors="replace"))

    def close(self):
        """Frees the stream and all of its memory (a batch's member goes with
        its batch)."""
        if getattr(self, "_batch", None) is not None:
            self._h = None
            return
        if getattr(self, "_h", None):
            _lib().cbinfer_stream_destroy(self._h)
            self._h = None
            self._net._stream_closed()

    def set_policy(self, spec, layer=None):
        """The change policy ("evnet:pixel", "skipconv:output,block=4", ...) of
        one named convolution, or of every one when layer is None. Resets
        the stream: the next frame runs dense."""
        self._check(_lib().cbinfer_stream_set_policy(
            self._h, None if layer is None else layer.encode(), spec.encode()))

    def policy(self, layer):
        """The canonical policy spec of a named convolution."""
        buf = ctypes.create_string_buffer(64)
        self._check(_lib().cbinfer_stream_get_policy(self._h, layer.encode(), buf, len(buf)))
        return buf.value.decode()

    def state_bytes(self):
        """Bytes of the stream's temporal state (references and accumulators)."""
        b = ctypes.c_uint64()
        self._check(_lib().cbinfer_stream_state_bytes(self._h, ctypes.byref(b)))
        return b.value

    def set_threshold(self, threshold, layer=None):
        """τ of one named convolution, or of every one when layer is None."""
        lib = _lib()
        if layer is None:
            self._check(lib.cbinfer_stream_set_threshold_all(self._h, threshold))
        else:
            self._check(lib.cbinfer_stream_set_threshold(self._h, layer.encode(), threshold))

    def threshold(self, layer):
        """τ of a named convolution."""
        t = ctypes.c_float()
        self._check(_lib().cbinfer_stream_get_threshold(self._h, layer.encode(),
                                                        ctypes.byref(t)))
        return t.value

    def load_thresholds(self, path):
        """Per-layer thresholds from a file (all or nothing)."""
        self._check(_lib().cbinfer_stream_load_thresholds(self._h, os.fsencode(path)))

    def load_break_even(self, path):
        """Per-layer break-even shares from a file (all or nothing)."""
        self._check(_lib().cbinfer_stream_load_break_even(self._h, os.fsencode(path)))

    def collect_stats(self, on=True):
        """Time every step of every layer (see stats()['layers'])."""
        self._check(_lib().cbinfer_stream_set_param(self._h, _PARAM_COLLECT_STATS, 1 if on else 0))

    def push(self, frame):
        """Runs the network on one H x W x 3 uint8 RGB frame; returns the output
        as a new float32 array of shape (C, H, W), or a list of them (in
        Network.output_names order) when the model has several outputs."""
        a = np.ascontiguousarray(frame, dtype=np.uint8) if isinstance(frame, np.ndarray) \
            else None
        if a is None or a.ndim != 3 or a.shape[2] != 3:
            shape = getattr(frame, "shape", type(frame).__name__)
            raise ValueError(f"frame must be an H x W x 3 uint8 array, not {shape}")
        lib = _lib()
        self._check(lib.cbinfer_stream_push_rgb8(self._h, a.ctypes.data, a.shape[1],
                                                 a.shape[0], a.shape[1] * 3))
        return self._outputs()

    def _outputs(self):
        """The last frame's outputs: one array, or a list for several."""
        outs = []
        for k, shape in enumerate(self.output_shapes):
            out = np.empty(shape, dtype=np.float32)
            self._check(_lib().cbinfer_stream_read_output_at(self._h, k, out.ctypes.data,
                                                             out.size))
            outs.append(out)
        return outs[0] if len(outs) == 1 else outs

    def stats(self):
        """The last frame's statistics, with one dict per layer under 'layers'."""
        lib = _lib()
        fs = _FrameStats()
        self._check(lib.cbinfer_stream_frame_stats(self._h, ctypes.byref(fs)))
        d = {name: getattr(fs, name) for name, _ in _FrameStats._fields_}
        layers = []
        for k in range(lib.cbinfer_stream_layer_count(self._h)):
            ls = _LayerStats()
            self._check(lib.cbinfer_stream_layer_stats(self._h, k, ctypes.byref(ls)))
            layers.append({"name": ls.name.decode(), "op": ls.op.decode(),
                           "changed_px": ls.changed_px, "total_px": ls.total_px,
                           "changed_in_px": ls.changed_in_px, "macs": ls.macs,
                           "dense_macs": ls.dense_macs, "ran_dense": bool(ls.ran_dense),
                           "total_ms": ls.total_ms})
        d["layers"] = layers
        return d

    def reset(self):
        """Forgets the temporal state: the next frame runs dense."""
        self._check(_lib().cbinfer_stream_reset(self._h))


class Batch(_Closing):
    """n cameras of one network and one frame size, stepped together
    (cbinfer_batch_create): push() gives every camera one frame and runs each
    convolution once for all of them. Each camera keeps its own state,
    thresholds, policy and statistics: set and read them on streams[j]."""

    def __init__(self, net, n, width, height, backend="cpu", mode="cbinfer", precision="fp32",
                 threads=0):
        self._net = net
        self._h = _created(_lib().cbinfer_batch_create, net._h, int(n), int(width), int(height),
                           *_settings(backend, mode, precision))
        net._stream_opened()
        self.width, self.height = int(width), int(height)
        lib = _lib()
        self.output_shapes = _output_shapes(lib.cbinfer_batch_stream(self._h, 0),
                                            len(net.output_names))
        self.streams = [Stream._member(self, lib.cbinfer_batch_stream(self._h, j))
                        for j in range(int(n))]
        if threads:
            self._check(lib.cbinfer_batch_set_param(self._h, _PARAM_THREADS, threads))

    def _check(self, st):
        if st:
            raise Error(st, _lib().cbinfer_batch_last_error(self._h).decode(errors="replace"))

    def close(self):
        """Frees the batch and its streams."""
        if getattr(self, "_h", None):
            for s in self.streams:
                s._h = None
            _lib().cbinfer_batch_destroy(self._h)
            self._h = None
            self._net._stream_closed()

    def __len__(self):
        return len(self.streams)

    def push(self, frames):
        """One H x W x 3 uint8 frame per camera; returns a list with each
        camera's output, as Stream.push returns it."""
        if len(frames) != len(self.streams):
            raise ValueError(f"{len(self.streams)} frames needed, got {len(frames)}")
        arrays = []
        for j, f in enumerate(frames):
            a = np.ascontiguousarray(f, dtype=np.uint8) if isinstance(f, np.ndarray) else None
            if a is None or a.shape != (self.height, self.width, 3):
                shape = getattr(f, "shape", type(f).__name__)
                raise ValueError(f"frame {j} must be a {self.height} x {self.width} x 3 uint8 "
                                 f"array, not {shape}")
            arrays.append(a)
        ptrs = (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])
        self._check(_lib().cbinfer_batch_push_rgb8(self._h, ptrs, self.width, self.height,
                                                   self.width * 3))
        return [s._outputs() for s in self.streams]
