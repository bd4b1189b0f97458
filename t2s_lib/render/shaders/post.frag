#version 330
uniform sampler2D ldr;     // tone-mapped colour, alpha = CoC / max_coc
uniform vec2 texel;
uniform float max_coc;
uniform vec2 taps[24];
uniform int n_taps;
in vec2 v_ndc;
out vec4 frag;
float luma(vec3 c) { return dot(c, vec3(0.299, 0.587, 0.114)); }
// FXAA (Lottes 2009, the compact variant): blur along the local edge direction where contrast is high.
vec3 fxaa_at(vec2 uv) {
    vec3 nw = texture(ldr, uv + vec2(-1.0, -1.0) * texel).rgb;
    vec3 ne = texture(ldr, uv + vec2(1.0, -1.0) * texel).rgb;
    vec3 sw = texture(ldr, uv + vec2(-1.0, 1.0) * texel).rgb;
    vec3 se = texture(ldr, uv + vec2(1.0, 1.0) * texel).rgb;
    vec3 m = texture(ldr, uv).rgb;
    float lnw = luma(nw), lne = luma(ne), lsw = luma(sw), lse = luma(se), lm = luma(m);
    float lmin = min(lm, min(min(lnw, lne), min(lsw, lse)));
    float lmax = max(lm, max(max(lnw, lne), max(lsw, lse)));
    vec2 dir = vec2(-((lnw + lne) - (lsw + lse)), (lnw + lsw) - (lne + lse));
    float reduce = max((lnw + lne + lsw + lse) * (0.25 / 8.0), 1.0 / 128.0);
    float rcp_min = 1.0 / (min(abs(dir.x), abs(dir.y)) + reduce);
    dir = clamp(dir * rcp_min, vec2(-8.0), vec2(8.0)) * texel;
    vec3 a = 0.5 * (texture(ldr, uv + dir * (1.0 / 3.0 - 0.5)).rgb + texture(ldr, uv + dir * (2.0 / 3.0 - 0.5)).rgb);
    vec3 b = a * 0.5 + 0.25 * (texture(ldr, uv - dir * 0.5).rgb + texture(ldr, uv + dir * 0.5).rgb);
    float lb = luma(b);
    return (lb < lmin || lb > lmax) ? a : b;
}
void main() {
    vec2 uv = v_ndc * 0.5 + 0.5;
    vec4 c0 = texture(ldr, uv);
    float r0 = c0.a * max_coc;
    vec3 acc = c0.rgb; float wsum = 1.0;
    // variants (one program each, chosen per image): DOF for shallow depth of field, FXAA without
    // multisampling; with neither, one bilinear tap at the pixel centre box-filters a 2x2 supersample
#if FXAA
    if (r0 <= 0.5) acc = fxaa_at(uv);
#endif
#if DOF
    if (r0 > 0.5) {
        for (int i = 0; i < n_taps; ++i) {
            vec2 o = taps[i] * r0;
            vec4 s = texture(ldr, uv + o * texel);
            // a sample contributes if its own blur disc reaches this pixel (keeps a sharp
            // foreground from bleeding into a blurred background and vice versa)
            float w = clamp(s.a * max_coc - length(o) + 1.0, 0.0, 1.0);
            acc += s.rgb * w; wsum += w;
        }
    }
#endif
    frag = vec4(acc / wsum, 1.0);
}
