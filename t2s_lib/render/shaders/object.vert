#version 330
uniform mat4 mvp;
uniform mat4 model;
uniform mat3 normal_mat;
in vec3 in_pos;
in vec3 in_nrm;
in vec2 in_uv;
out vec3 v_pos;
out vec3 v_opos;
out vec3 v_nrm;
out vec2 v_uv;
void main() {
    vec4 w = model * vec4(in_pos, 1.0);
    v_pos = w.xyz;
    v_opos = in_pos;
    v_nrm = normal_mat * in_nrm;
    v_uv = in_uv;
    gl_Position = mvp * vec4(in_pos, 1.0);
}
