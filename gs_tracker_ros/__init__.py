"""gs_tracker_ros: online point tracking on live camera streams.

Conventions used throughout the package:
  * images are numpy arrays ``(H, W, 3) uint8`` in RGB order (grayscale ``(H, W)`` accepted where stated);
  * pixel coordinates are ``(x, y)`` float with x to the right and y down, origin at the centre
    of the top-left pixel;
  * positional variance is isotropic, in px^2.

The pure-Python core (``core``, ``motion``, ``evaluation``, ``synthetic``, ``model``, ``render``,
``engines``, ``viz``) never imports ROS; ``gs_tracker_ros.ros`` is the thin ROS 2 adapter.
"""

__version__ = "0.1.0"

# The generated ROS interfaces (gs_tracker_ros.msg, gs_tracker_ros.srv and their typesupport
# modules) may live in another gs_tracker_ros/ folder on sys.path: in the venv, CMake installs them
# into site-packages without an __init__.py while this package is the editable source tree.
# Make every such folder part of this package (see CMakeLists.txt, scripts/setup_env.sh).
__path__ = __import__("pkgutil").extend_path(__path__, __name__)
