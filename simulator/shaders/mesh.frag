#version 330 core
// PoseExaminer colour-pass fragment shader: Lambert diffuse plus a soft Blinn-Phong
// highlight from directional lights, and ambient. Much cheaper than a full PBR shader on
// a software rasteriser; uniform names match what pyrender's renderer sets.
#define MAX_LIGHTS 4

struct Light {
    vec3 color;
    float intensity;
    vec3 direction;
};
struct Material {
    vec4 base_color_factor;
    float roughness_factor;
#ifdef HAS_BASE_COLOR_TEX
    sampler2D base_color_texture;
#endif
};

uniform Material material;
uniform Light directional_lights[MAX_LIGHTS];
uniform int n_directional_lights;
uniform vec3 ambient_light;
uniform vec3 cam_pos;

in vec3 world_pos;
in vec3 world_normal;
#ifdef TEXCOORD_0_LOC
in vec2 uv_0;
#endif
out vec4 frag_color;

void main()
{
    // Light in linear space: sRGB albedo in, gamma-encoded colour out.
    vec4 base = material.base_color_factor;
#ifdef HAS_BASE_COLOR_TEX
#ifdef TEXCOORD_0_LOC
    base = base * texture(material.base_color_texture, uv_0);  // e.g. garment fabric patterns
#endif
#endif
    vec3 albedo = pow(base.rgb, vec3(2.2));
    vec3 n = normalize(world_normal);
    vec3 v = normalize(cam_pos - world_pos);
    if (dot(n, v) < 0.0) n = -n;  // back faces seen through open meshes
    vec3 colour = ambient_light * albedo;
    float shininess = mix(64.0, 4.0, clamp(material.roughness_factor, 0.0, 1.0));
    for (int i = 0; i < n_directional_lights && i < MAX_LIGHTS; i++) {
        vec3 l = -normalize(directional_lights[i].direction);
        float ndl = max(dot(n, l), 0.0);
        vec3 h = normalize(l + v);
        float spec = pow(max(dot(n, h), 0.0), shininess) * 0.15 * ndl;
        // Intensity in pyrender units (W/m^2); 1/pi puts a Lambertian surface at albedo
        // brightness for intensity pi.
        vec3 radiance = directional_lights[i].color * directional_lights[i].intensity / 3.14159265;
        colour += (albedo * ndl + spec) * radiance;
    }
    frag_color = vec4(pow(clamp(colour, 0.0, 1.0), vec3(1.0 / 2.2)), base.a);
}
