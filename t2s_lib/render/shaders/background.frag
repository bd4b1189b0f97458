uniform sampler2D env;
uniform mat3 cam_rot;     // camera -> rig
uniform mat3 env_rot;     // rig -> world (environment)
uniform float tan_half;
uniform float aspect;
uniform float bg_lod;
in vec2 v_ndc;
out vec4 frag;
void main() {
    vec3 d = normalize(cam_rot * vec3(v_ndc.x * tan_half * aspect, v_ndc.y * tan_half, -1.0));
    vec3 c = textureLod(env, equirect(env_rot * d), bg_lod).rgb;
    frag = finish(c, 0.0, 0.0);   // the background is infinitely far: inverse depth 0
}
