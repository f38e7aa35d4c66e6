"""Replay a rosbag2 through gs_tracker_node and record its tracks (needs a ROS 2 install with
launch_ros and ros2bag): the live node evaluated on recorded images.

    ros2 launch gs_tracker_ros replay.launch.py bag:=/data/run1 output:=/data/run1_tracks rate:=0.5

The node starts with the package's config/tracker.yaml (or params_file:=...) and `image` remapped
to `image_topic` (the image topic stored in the bag); `ros2 bag record` writes the node's tracks
(<namespace>/tracks) and /diagnostics to `output`; `ros2 bag play` starts 3 s later, so that the
node and the recorder are up, and the launch ends when playback ends. A rate below 1 gives a slow
CPU time to keep up; frames the node drops anyway are counted on /diagnostics.

The node's image QoS is `image_qos` (default reliable): `ros2 bag play` offers the QoS the bag
recorded, which is reliable for a bag written without QoS information (`gs-tracker bag make`);
a best-effort node subscription loses most large images between processes with Fast DDS. Pass
image_qos:=sensor_data for a bag recorded from a best-effort camera.

If `ros2 bag play` fails, or `ros2 bag record` stops before the launch ends, the launch stops and
`ros2 launch` exits non-zero.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, ExecuteProcess, RegisterEventHandler, TimerAction
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


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
    default_params = PathJoinSubstitution([FindPackageShare("gs_tracker_ros"), "config", "tracker.yaml"])
    bag = LaunchConfiguration("bag")
    output = LaunchConfiguration("output")
    rate = LaunchConfiguration("rate")
    image_topic = LaunchConfiguration("image_topic")
    params_file = LaunchConfiguration("params_file")
    namespace = LaunchConfiguration("namespace")
    image_qos = LaunchConfiguration("image_qos")

    record = ExecuteProcess(
        cmd=["ros2", "bag", "record", "--output", output, [namespace, "/tracks"], "/diagnostics"],
        output="screen",
    )
    play = ExecuteProcess(cmd=["ros2", "bag", "play", bag, "--rate", rate], output="screen")
    return LaunchDescription([
        DeclareLaunchArgument("bag", description="rosbag2 to play (folder or file) holding the images"),
        DeclareLaunchArgument("output", description="folder for the recorded tracks bag (must not exist yet)"),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback rate"),
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw",
                              description="the image topic stored in the bag"),
        DeclareLaunchArgument("params_file", default_value=default_params,
                              description="parameters of gs_tracker_node (YAML)"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of the node, e.g. /replay (no trailing slash)"),
        DeclareLaunchArgument("image_qos", default_value="reliable", choices=["reliable", "sensor_data"],
                              description="the node's image QoS: reliable matches what ros2 bag play offers "
                                          "for bags without recorded QoS"),
        Node(
            package="gs_tracker_ros",
            executable="gs_tracker_node",
            name="gs_tracker_node",
            namespace=namespace,
            parameters=[params_file, {"image_qos": image_qos}],
            remappings=[("image", image_topic)],
            output="screen",
        ),
        record,
        TimerAction(period=3.0, actions=[play]),
        RegisterEventHandler(OnProcessExit(target_action=play, on_exit=_play_exited)),
        RegisterEventHandler(OnProcessExit(target_action=record, on_exit=_record_exited)),
    ])
