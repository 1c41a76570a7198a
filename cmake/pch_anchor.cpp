// The one source file of an object library that exists to build a precompiled header (cmake/Pch.cmake).
