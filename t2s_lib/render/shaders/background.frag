uniform sampler2D env;
uniform mat3 cam_rot;     // camera -> rig
uniform mat3 env_rot;     // rig -> world (environment)
uniform float tan_half;
uniform float aspect;
in vec2 v_ndc;
out vec4 frag;
// Texture-coordinate derivative of the equirect mapping along a change dd of the direction d:
// u = 0.5 + atan(x, -z) / 2pi, v = acos(y) / pi (analytic, so the 360-degree seam, where u jumps,
// does not pick the coarsest mip level as screen-space derivatives of u would).
vec2 equirect_grad(vec3 d, vec3 dd) {
    float r2 = max(d.x * d.x + d.z * d.z, 1e-8);
    return vec2((-d.z * dd.x + d.x * dd.z) / (2.0 * PI * r2), -dd.y / (PI * sqrt(r2)));
}
void main() {
    vec3 d = env_rot * normalize(cam_rot * vec3(v_ndc.x * tan_half * aspect, v_ndc.y * tan_half, -1.0));
    // the sample's footprint on the map picks the mip level (the larger axis: u near the poles)
    vec2 gx = equirect_grad(d, dFdx(d));
    vec2 gy = equirect_grad(d, dFdy(d));
    vec3 c = textureGrad(env, equirect(d), gx, gy).rgb;
    frag = finish(c, 0.0, 0.0);   // the background is infinitely far: inverse depth 0
}
