"""Replay a rosbag2 through gs_tracker_node and record its tracks (needs a ROS 2 install with
launch_ros and ros2bag): the live node evaluated on recorded images.

    ros2 launch gs_tracker_ros replay.launch.py bag:=/data/run1 output:=/data/run1_tracks rate:=0.5
    ros2 launch gs_tracker_ros replay.launch.py --show-args      # every argument (docs/ros.md)

The node is tracker.launch.py's (a launch_ros LifecycleNode, included with autostart:=true, so it
configures and activates itself); it starts with the package's config/tracker.yaml (or
params_file:=...) and `image` remapped to `image_topic` (the image topic stored in the bag);
`ros2 bag record` writes the node's tracks (<namespace>/tracks)
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

from dataclasses import replace

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, ExecuteProcess, IncludeLaunchDescription, \
    RegisterEventHandler, TimerAction
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

from gs_tracker_ros.ros.launch_arguments import NODE_ARGUMENTS, LaunchArgument, declarations

PACKAGE = "gs_tracker_ros"
# what differs from tracker.launch.py's arguments
REPLAY_ARGUMENTS = {
    "image_topic": replace(NODE_ARGUMENTS["image_topic"], description=(
        "the image topic stored in the bag (the base topic with image_transport:=compressed)")),
    "namespace": replace(NODE_ARGUMENTS["namespace"], description=(
        "namespace of the node, whose tracks are recorded, e.g. /replay (no trailing slash)")),
    "image_qos": LaunchArgument("reliable", "the node's image QoS: reliable matches what ros2 bag play offers for "
                                "bags without recorded QoS.", ("reliable", "auto", "sensor_data", "system_default")),
}
NODE_ARGUMENTS_GIVEN = ("image_topic", "params_file", "namespace", "image_qos", "method", "image_transport")


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


def generate_launch_description():
    share = FindPackageShare(PACKAGE)
    default_params = PathJoinSubstitution([share, "config", "tracker.yaml"])
    output = LaunchConfiguration("output")
    namespace = LaunchConfiguration("namespace")
    # the node as tracker.launch.py starts it (its camera_info_topic passes through from the command line)
    node = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([share, "launch", "tracker.launch.py"])),
        launch_arguments=[*((name, LaunchConfiguration(name)) for name in NODE_ARGUMENTS_GIVEN), ("autostart", "true")])
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
        *declarations(NODE_ARGUMENTS_GIVEN, changed=REPLAY_ARGUMENTS, defaults={"params_file": default_params}),
        node,
        record,
        TimerAction(period=3.0, actions=[play]),
        RegisterEventHandler(OnProcessExit(target_action=play, on_exit=_play_exited)),
        RegisterEventHandler(OnProcessExit(target_action=record, on_exit=_record_exited)),
    ])
