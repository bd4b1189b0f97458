uniform sampler2D env;
uniform sampler2D tex;
uniform mat3 env_rot;
uniform vec3 sh[9];
uniform float env_maxlod;
uniform float env_light;
uniform vec3 cam_pos;
uniform vec3 sun_dir;
uniform vec3 sun_rad;
uniform vec4 base_color;
uniform float metallic;
uniform float roughness;
uniform int has_tex;
uniform int pattern;
uniform vec3 color2;
uniform float pattern_scale;
in vec3 v_pos;
in vec3 v_opos;
in vec3 v_nrm;
in vec2 v_uv;
out vec4 frag;

vec3 irradiance(vec3 n) {   // E(n)/pi from 9 SH coefficients
    return max(sh[0] * 0.282095
        + sh[1] * 0.488603 * n.y + sh[2] * 0.488603 * n.z + sh[3] * 0.488603 * n.x
        + sh[4] * 1.092548 * n.x * n.y + sh[5] * 1.092548 * n.y * n.z
        + sh[6] * 0.315392 * (3.0 * n.z * n.z - 1.0) + sh[7] * 1.092548 * n.x * n.z
        + sh[8] * 0.546274 * (n.x * n.x - n.y * n.y), vec3(0.0));
}
vec2 env_brdf(float nv, float r) {   // analytic split-sum approximation (Karis 2014)
    vec4 r4 = r * vec4(-1.0, -0.0275, -0.572, 0.022) + vec4(1.0, 0.0425, 1.04, -0.04);
    float a = min(r4.x * r4.x, exp2(-9.28 * nv)) * r4.x + r4.y;
    return vec2(-1.04, 1.04) * a + r4.zw;
}
float hash3(vec3 p) { return fract(sin(dot(p, vec3(12.9898, 78.233, 37.719))) * 43758.5453); }
float vnoise(vec3 p) {
    vec3 i = floor(p); vec3 f = fract(p); f = f * f * (3.0 - 2.0 * f);
    float a = mix(mix(hash3(i), hash3(i + vec3(1,0,0)), f.x), mix(hash3(i + vec3(0,1,0)), hash3(i + vec3(1,1,0)), f.x), f.y);
    float b = mix(mix(hash3(i + vec3(0,0,1)), hash3(i + vec3(1,0,1)), f.x), mix(hash3(i + vec3(0,1,1)), hash3(i + vec3(1,1,1)), f.x), f.y);
    return mix(a, b, f.z);
}
void main() {
    vec3 n = normalize(v_nrm);
    if (!gl_FrontFacing) n = -n;     // furniture meshes are often not closed / consistently wound
    vec3 v = normalize(cam_pos - v_pos);
    if (dot(n, v) < 0.0) n = normalize(n - 1.01 * dot(n, v) * v);
    vec4 albedo4 = base_color;
    if (has_tex == 1) {
        vec4 t = texture(tex, v_uv);
        albedo4 *= vec4(pow(t.rgb, vec3(2.2)), t.a);
    }
    vec3 albedo = pow(albedo4.rgb, vec3(1.0));
    if (pattern == 1) {          // wood-like bands
        float s = sin((v_opos.x + 0.3 * vnoise(v_opos * 3.0)) * pattern_scale * 3.0);
        albedo = mix(albedo, color2, smoothstep(-0.2, 0.8, s));
    } else if (pattern == 2) {   // tiles / weave
        vec3 q = floor(v_opos * pattern_scale);
        albedo = mix(albedo, color2, mod(q.x + q.y + q.z, 2.0));
    } else if (pattern == 3) {   // stone-like noise
        albedo = mix(albedo, color2, vnoise(v_opos * pattern_scale));
    }
    float r = clamp(roughness, 0.04, 1.0);
    vec3 f0 = mix(vec3(0.04), albedo, metallic);
    float nv = max(dot(n, v), 1e-4);
    // sun: GGX distribution, Smith-Schlick visibility, Schlick Fresnel
    vec3 l = normalize(sun_dir);
    vec3 h = normalize(l + v);
    float nl = max(dot(n, l), 0.0);
    float nh = max(dot(n, h), 0.0);
    float a2 = r * r * r * r;
    float dd = nh * nh * (a2 - 1.0) + 1.0;
    float D = a2 / (PI * dd * dd);
    float k = (r + 1.0) * (r + 1.0) / 8.0;
    float G = (nv / (nv * (1.0 - k) + k)) * (nl / (nl * (1.0 - k) + k));
    vec3 F = f0 + (1.0 - f0) * pow(1.0 - max(dot(h, v), 0.0), 5.0);
    vec3 spec_sun = D * G * F / max(4.0 * nv * nl, 1e-4);
    vec3 kd = (1.0 - F) * (1.0 - metallic);
    vec3 col = (kd * albedo / PI + spec_sun) * sun_rad * nl;
    // image-based light
    vec3 Fa = f0 + (max(vec3(1.0 - r), f0) - f0) * pow(1.0 - nv, 5.0);
    col += env_light * (1.0 - Fa) * (1.0 - metallic) * albedo * irradiance(env_rot * n);
    vec3 rr = env_rot * reflect(-v, n);
    vec3 pref = textureLod(env, equirect(rr), r * env_maxlod).rgb;
    vec2 ab = env_brdf(nv, r);
    col += env_light * pref * (f0 * ab.x + ab.y);
    frag = finish(col, 1.0 / max(length(cam_pos - v_pos), 1e-3), 1.0);
}
