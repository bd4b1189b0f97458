#version 330
const float PI = 3.14159265;
uniform float exposure;
uniform int tonemap;       // 0 none (clamp), 1 ACES filmic, 2 Reinhard
uniform float coc_scale;   // pixels of CoC radius per unit |1 - S/z|
uniform float focus;
uniform float max_coc;
uniform int alpha_mode;    // 0: alpha = CoC / max_coc (for the DOF pass), 1: alpha = object mask
vec3 aces(vec3 x) { return clamp((x * (2.51 * x + 0.03)) / (x * (2.43 * x + 0.59) + 0.14), 0.0, 1.0); }
// Tone mapping happens per fragment so the multisampled buffer can be 8-bit (llvmpipe resolves
// float MSAA buffers several times slower); the CoC rides in alpha for the optional DOF pass.
vec4 finish(vec3 c, float invz, float is_object) {
    c *= exposure;
    if (tonemap == 1) c = aces(c);
    else if (tonemap == 2) c = c / (1.0 + c);
    c = pow(clamp(c, 0.0, 1.0), vec3(1.0 / 2.2));
    float a = alpha_mode == 1 ? is_object : min(1.0, coc_scale * abs(1.0 - focus * invz) / max(max_coc, 1e-6));
    return vec4(c, a);
}
vec2 equirect(vec3 d) {
    return vec2(0.5 + atan(d.x, -d.z) / (2.0 * PI), acos(clamp(d.y, -1.0, 1.0)) / PI);
}
