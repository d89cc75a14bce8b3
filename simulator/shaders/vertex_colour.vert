#version 330 core
// PoseExaminer segmentation-pass vertex shader for primitives with vertex colours: the
// colour encodes a label (DensePose part, or a face id), passed on without interpolation.
layout(location = 0) in vec3 position;
layout(location = COLOR_0_LOC) in vec4 color_0;
layout(location = INST_M_LOC) in mat4 inst_m;
uniform mat4 P;
uniform mat4 V;
uniform mat4 M;
flat out vec4 label_color;
void main()
{
    gl_Position = P * V * M * inst_m * vec4(position, 1.0);
    label_color = color_0;
}
