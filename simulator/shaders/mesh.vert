#version 330 core
// PoseExaminer colour-pass vertex shader: world-space position and normal for lighting.
// Attribute locations follow pyrender's layout defines (position 0, NORMAL_LOC, INST_M_LOC).
layout(location = 0) in vec3 position;
#ifdef NORMAL_LOC
layout(location = NORMAL_LOC) in vec3 normal;
#endif
#ifdef TEXCOORD_0_LOC
layout(location = TEXCOORD_0_LOC) in vec2 texcoord_0;
#endif
layout(location = INST_M_LOC) in mat4 inst_m;

uniform mat4 M;
uniform mat4 V;
uniform mat4 P;

out vec3 world_pos;
out vec3 world_normal;
#ifdef TEXCOORD_0_LOC
out vec2 uv_0;
#endif

void main()
{
    mat4 model = M * inst_m;
    vec4 wp = model * vec4(position, 1.0);
    world_pos = wp.xyz;
#ifdef NORMAL_LOC
    world_normal = mat3(transpose(inverse(model))) * normal;
#else
    world_normal = vec3(0.0, 0.0, 1.0);
#endif
#ifdef TEXCOORD_0_LOC
    uv_0 = texcoord_0;
#endif
    gl_Position = P * V * wp;
}
