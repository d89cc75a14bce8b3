"""Patches to pyrender's renderer and shader cache that `simulator.renderer` and
`simulator.iuv` install on their own pyrender objects (never on pyrender's classes).

- `single_sample_segmentation`: SEG passes draw into the single-sample framebuffer;
- `read_colour_only`: an RGBA pass that skips the depth read;
- `shader_cache`: our shaders for the lit mesh (fast shading) and the label pass.
"""

from __future__ import annotations

import os

import numpy as np

def single_sample_segmentation(inner) -> None:
    """Make pyrender's SEG passes draw into its single-sample framebuffer and read it
    directly. pyrender draws every pass into a 4x multisampled buffer and resolves it with
    blits; with MSAA disabled for SEG all four samples hold the same value, so drawing one
    sample gives the same labels and depth for a quarter of the fragment writes and no
    resolve. Other passes keep pyrender's own path."""
    from OpenGL.GL import (
        GL_DEPTH_COMPONENT, GL_DEPTH_TEST, GL_DRAW_FRAMEBUFFER, GL_FLOAT, GL_LESS, GL_READ_FRAMEBUFFER, GL_RGB,
        GL_TRUE, GL_UNSIGNED_BYTE, glBindFramebuffer, glDepthFunc, glDepthMask, glDepthRange, glEnable,
        glReadPixels, glViewport,
    )
    from pyrender.constants import RenderFlags

    own_viewport = inner._configure_forward_pass_viewport
    own_read = inner._read_main_framebuffer

    def configure_viewport(flags):
        if not (flags & RenderFlags.SEG and flags & RenderFlags.OFFSCREEN):
            return own_viewport(flags)
        inner._configure_main_framebuffer()
        glBindFramebuffer(GL_DRAW_FRAMEBUFFER, inner._main_fb)
        glViewport(0, 0, inner.viewport_width, inner.viewport_height)
        glEnable(GL_DEPTH_TEST)
        glDepthMask(GL_TRUE)
        glDepthFunc(GL_LESS)
        glDepthRange(0.0, 1.0)

    def read(scene, flags):
        if not flags & RenderFlags.SEG:
            return own_read(scene, flags)
        width, height = inner._main_fb_dims
        glBindFramebuffer(GL_READ_FRAMEBUFFER, inner._main_fb)
        z = np.frombuffer(glReadPixels(0, 0, width, height, GL_DEPTH_COMPONENT, GL_FLOAT), dtype=np.float32)
        rgb = np.frombuffer(glReadPixels(0, 0, width, height, GL_RGB, GL_UNSIGNED_BYTE), dtype=np.uint8)
        cam = scene.main_camera_node.camera
        zn, zf = float(cam.znear), float(cam.zfar)
        # OpenGL window depth -> metres along the optical axis (0 where nothing was drawn).
        depth = np.float32(2.0 * zn * zf) / (np.float32(zf + zn) - (np.float32(2.0) * z - 1) * np.float32(zf - zn))
        depth[z == 1.0] = 0.0
        return np.flip(rgb.reshape(height, width, 3), 0), np.flip(depth.reshape(height, width), 0)

    inner._configure_forward_pass_viewport = configure_viewport
    inner._read_main_framebuffer = read


def read_colour_only(self, scene, flags):
    """pyrender `Renderer._read_main_framebuffer` for an RGBA pass whose depth is not
    wanted: resolve the multisampled colour buffer and read it, nothing else."""
    from OpenGL.GL import (
        GL_COLOR_BUFFER_BIT, GL_DRAW_FRAMEBUFFER, GL_LINEAR, GL_READ_FRAMEBUFFER, GL_RGBA,
        GL_UNSIGNED_BYTE, glBindFramebuffer, glBlitFramebuffer, glReadPixels,
    )

    width, height = self._main_fb_dims
    glBindFramebuffer(GL_READ_FRAMEBUFFER, self._main_fb_ms)
    glBindFramebuffer(GL_DRAW_FRAMEBUFFER, self._main_fb)
    glBlitFramebuffer(0, 0, width, height, 0, 0, width, height, GL_COLOR_BUFFER_BIT, GL_LINEAR)
    glBindFramebuffer(GL_READ_FRAMEBUFFER, self._main_fb)
    buf = glReadPixels(0, 0, width, height, GL_RGBA, GL_UNSIGNED_BYTE)
    return np.flip(np.frombuffer(buf, dtype=np.uint8).reshape(height, width, 4), axis=0), None


SHADER_DIR = os.path.join(os.path.dirname(__file__), "shaders")
VERTEX_COLOUR_SHADERS = (os.path.join(SHADER_DIR, "vertex_colour.vert"), os.path.join(SHADER_DIR, "vertex_colour.frag"))


def shader_cache(fast: bool = True):
    """pyrender's shader cache with our routing: the lit mesh shaders come from
    simulator/shaders/ when `fast` (else pyrender's PBR ones) and never see vertex
    colours (they carry labels, not albedo); the segmentation pass draws primitives with
    vertex colours with `vertex_colour.*` (flat label per face) and everything else with
    pyrender's per-node colour. Other passes keep pyrender's shaders."""
    from pyrender.shader_program import ShaderProgramCache

    class _Cache(ShaderProgramCache):
        def __init__(self) -> None:
            super().__init__()
            self._pyrender_dir = self.shader_dir  # resolved once (realpath is slow)

        def get_program(self, vertex_shader, fragment_shader, geometry_shader=None, defines=None):
            defines = dict(defines or {})
            self.shader_dir = self._pyrender_dir
            if (vertex_shader, fragment_shader) == ("mesh.vert", "mesh.frag"):
                defines.pop("COLOR_0_LOC", None)
                if fast:
                    self.shader_dir = SHADER_DIR
            elif vertex_shader == "segmentation.vert" and "COLOR_0_LOC" in defines:
                vertex_shader, fragment_shader = VERTEX_COLOUR_SHADERS
            return super().get_program(vertex_shader, fragment_shader, geometry_shader, defines)

    return _Cache()
