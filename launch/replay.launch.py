"""Replay a rosbag2 through gs_tracker_node and record its tracks (needs a ROS 2 install with
launch_ros and ros2bag): the live node evaluated on recorded images.

    ros2 launch gs_tracker_ros replay.launch.py bag:=/data/run1 output:=/data/run1_tracks rate:=0.5

The node starts with the package's config/tracker.yaml (or params_file:=...) and `image` remapped
to `image_topic` (the image topic stored in the bag); `ros2 bag record` writes the node's tracks
(<namespace>/tracks) and /diagnostics to `output`; `ros2 bag play` starts 3 s later, so that the
node and the recorder are up, and the launch ends when playback ends. A rate below 1 gives a slow
CPU time to keep up; frames the node drops anyway are counted on /diagnostics.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, ExecuteProcess, RegisterEventHandler, TimerAction
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    default_params = os.path.join(get_package_share_directory("gs_tracker_ros"), "config", "tracker.yaml")
    bag = LaunchConfiguration("bag")
    output = LaunchConfiguration("output")
    rate = LaunchConfiguration("rate")
    image_topic = LaunchConfiguration("image_topic")
    params_file = LaunchConfiguration("params_file")
    namespace = LaunchConfiguration("namespace")

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
        Node(
            package="gs_tracker_ros",
            executable="gs_tracker_node",
            name="gs_tracker_node",
            namespace=namespace,
            parameters=[params_file],
            remappings=[("image", image_topic)],
            output="screen",
        ),
        ExecuteProcess(
            cmd=["ros2", "bag", "record", "--output", output, [namespace, "/tracks"], "/diagnostics"],
            output="screen",
        ),
        TimerAction(period=3.0, actions=[play]),
        RegisterEventHandler(OnProcessExit(target_action=play, on_exit=[EmitEvent(event=Shutdown())])),
    ])
