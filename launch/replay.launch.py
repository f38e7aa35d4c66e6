"""Replay a rosbag2 through gs_tracker_node and record its tracks (needs a ROS 2 install with
launch_ros and ros2bag): the live node evaluated on recorded images.

    ros2 launch gs_tracker_ros replay.launch.py bag:=/data/run1 output:=/data/run1_tracks rate:=0.5
    ros2 launch gs_tracker_ros replay.launch.py --show-args      # every argument (docs/ros.md)

The node (a launch_ros LifecycleNode that configures and activates itself) starts with the
package's config/tracker.yaml (or params_file:=...) and `image` remapped to `image_topic` (the
image topic stored in the bag); `ros2 bag record` writes the node's tracks (<namespace>/tracks)
and /diagnostics to `output`; `ros2 bag play` starts 3 s later, so that the node and the recorder
are up, and the launch ends when playback ends. A rate below 1 gives a slow CPU time to keep up;
frames the node drops anyway are counted on /diagnostics. There is no autostart argument: the bag
plays on a timer, into an active node.

The node's image QoS is `image_qos` (default reliable): `ros2 bag play` offers the QoS the bag
recorded, which is reliable for a bag written without QoS information (`gs-tracker bag make`);
a best-effort node subscription loses most large images between processes with Fast DDS. auto
would follow the player too, but only once it has seen it: the first images could be lost. Pass
image_qos:=sensor_data for a bag recorded from a best-effort camera. method and image_transport
set the node parameter when given (empty: the params file's value).

If `ros2 bag play` fails, or `ros2 bag record` stops before the launch ends, the launch stops and
`ros2 launch` exits non-zero.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, ExecuteProcess, OpaqueFunction, RegisterEventHandler, \
    TimerAction
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode
from launch_ros.substitutions import FindPackageShare

PACKAGE = "gs_tracker_ros"
NODE = "gs_tracker_node"


class ReplayFailed(RuntimeError):
    """Raised from an exit handler: launch stops everything and `ros2 launch` returns non-zero
    (launch has no other way for a launch file to set its exit code)."""


def _play_exited(event, context):
    if event.returncode != 0:
        raise ReplayFailed(f"ros2 bag play failed (exit code {event.returncode}): nothing was replayed")
    return [EmitEvent(event=Shutdown(reason="bag playback finished"))]


def _record_exited(event, context):
    if not getattr(context, "is_shutdown", False):  # the recorder only ends when launch ends it
        raise ReplayFailed(f"ros2 bag record stopped (exit code {event.returncode}) before the replay ended: "
                           f"the tracks are not recorded")
    return []


def start_node(context):
    parameters = {"image_qos": LaunchConfiguration("image_qos").perform(context), "autostart": True}
    for name in ("method", "image_transport"):  # given: set; empty: the params file's value
        value = LaunchConfiguration(name).perform(context).strip()
        if value:
            parameters[name] = value
    return [LifecycleNode(
        package=PACKAGE,
        executable=NODE,
        name=NODE,
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("params_file"), parameters],
        remappings=[("image", LaunchConfiguration("image_topic"))],
        output="screen",
    )]


def generate_launch_description():
    default_params = PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "tracker.yaml"])
    output = LaunchConfiguration("output")
    namespace = LaunchConfiguration("namespace")
    record = ExecuteProcess(
        cmd=["ros2", "bag", "record", "--output", output, [namespace, "/tracks"], "/diagnostics"],
        output="screen",
    )
    play = ExecuteProcess(cmd=["ros2", "bag", "play", LaunchConfiguration("bag"), "--rate", LaunchConfiguration("rate")],
                          output="screen")
    return LaunchDescription([
        DeclareLaunchArgument("bag", description="rosbag2 to play (folder or file) holding the images"),
        DeclareLaunchArgument("output", description="folder for the recorded tracks bag (must not exist yet)"),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback rate"),
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw",
                              description="the image topic stored in the bag (the base topic with "
                                          "image_transport:=compressed)"),
        DeclareLaunchArgument("params_file", default_value=default_params,
                              description="parameters of gs_tracker_node (YAML)"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of the node, e.g. /replay (no trailing slash)"),
        DeclareLaunchArgument("image_qos", default_value="reliable",
                              choices=["reliable", "auto", "sensor_data", "system_default"],
                              description="the node's image QoS: reliable matches what ros2 bag play offers "
                                          "for bags without recorded QoS."),
        DeclareLaunchArgument("method", default_value="",
                              description="tracking method (probfuse, probfuse-fast, probfuse-accurate, klt, "
                                          "...); empty: the params file's (probfuse in config/tracker.yaml)"),
        DeclareLaunchArgument("image_transport", default_value="", choices=["", "raw", "compressed"],
                              description="raw or compressed (CompressedImage on <image_topic>/compressed); "
                                          "empty: the params file's (raw)."),
        OpaqueFunction(function=start_node),
        record,
        TimerAction(period=3.0, actions=[play]),
        RegisterEventHandler(OnProcessExit(target_action=play, on_exit=_play_exited)),
        RegisterEventHandler(OnProcessExit(target_action=record, on_exit=_record_exited)),
    ])
